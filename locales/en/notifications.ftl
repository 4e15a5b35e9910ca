# In-app, email and push notifications of security events.
security-password-changed = Your password was changed
security-two-factor-enabled = Two-factor authentication was turned on
security-two-factor-disabled = Two-factor authentication was turned off
security-recovery-code-used = A recovery code was used to sign in
security-recovery-codes-regenerated = New recovery codes were generated
security-access-token-created = A personal access token was created
security-email-changed = Your login email was changed
security-mailbox-connected = A mailbox was connected
security-mailbox-disconnected = A mailbox was disconnected
security-body = { $what }. If this was not you, change your password and review your security log.
security-body-from = { $what } (from { $ip }). If this was not you, change your password and review your security log.
mail-received-title = New message from { $sender }
mail-received-untitled = New message
mailbox-reauth-title = { $address } needs you to sign in again
mailbox-reauth-body = The mail server refused the saved password. Mail from this mailbox is not synced until you connect it again.
webhook-disabled-title = A webhook was disabled after its deliveries kept failing
webhook-disabled-body = Deliveries to { $url } kept failing for more than a day, so the webhook was turned off. The events it missed are kept: fix the receiver, then turn the webhook on again to send them.
