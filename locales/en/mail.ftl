# System emails in English. Each language is one folder of .ftl files; this one is the fallback.
language-name = English

greeting = Hello { $name },
signoff = — Concierge

email-change-verify-subject = Confirm your new login email
email-change-verify-body =
    Someone (hopefully you) asked to make { $new_email } the login email of your Concierge account.
    To confirm, open this link within { $hours } hours:

    { $link }

    If you did not ask for this, ignore this email: nothing changes until the link is used.

email-change-notice-subject = Your login email is being changed
email-change-notice-body =
    A change of your login email to { $new_email } was requested from { $ip }.
    It takes effect once the new address is confirmed.

    If this was not you, change your password now and review your sessions.

email-changed-subject = Your login email was changed
email-changed-body =
    Your login email is now { $new_email }. From now on, sign in with that address.

    If this was not you, contact your workspace administrator at once.

password-changed-subject = Your password was changed
password-changed-body =
    The password of your Concierge account was changed on { $time } (UTC) from { $ip }.
    Every other session was signed out.

    If this was not you, reset your password at once and review your security log.

password-reset-subject = Reset your Concierge password
password-reset-body =
    Someone (hopefully you) asked from { $ip } to reset the password of your Concierge account.
    To choose a new one, open this link within { $minutes } minutes:

    { $link }

    The link works once. If you did not ask for this, ignore this email: your password stays as it is.

password-reset-done-subject = Your password was reset
password-reset-done-body =
    The password of your Concierge account was reset with an emailed link on { $time } (UTC) from { $ip }.
    Every session was signed out; two-factor sign-in, if you use it, is still on.

    If this was not you, reset your password again at once and review your security log.

verify-email-subject = Confirm your email address
verify-email-body =
    Welcome to Concierge. To confirm that { $email } is your address, open this link within { $days } days:

    { $link }

    If you did not create this account, ignore this email.

sign-up-attempt-subject = Someone tried to sign up with your address
sign-up-attempt-body =
    Someone tried to create a new Concierge account with { $email }, which already has one: yours.
    Nothing was changed. If it was you, sign in instead; if you forgot your password, reset it here:

    { $reset }

    If it was not you, you can ignore this email.

account-deletion-subject = Your Concierge account will be deleted
account-deletion-body =
    As you asked, your Concierge account will be deleted on { $when } (UTC), with its sessions, tokens, connected mailboxes and calendars.
    Until then, sign in and cancel the deletion under Security if you change your mind.

    If this was not you, sign in now, cancel it and change your password.

# Notification emails (HTML and plain text share these).
notification-subject-many = { $count } new notifications
notification-intro-one = There is something new for you:
notification-intro-many = { $count } things happened while you were away:
notification-more = …and { $count } more.
notification-open = Open Concierge
notification-footer = You get these emails because of your notification settings.

# The daily summary.
digest-subject = Your daily summary for { $date }
digest-intro = Here is what happened in your account on { $date }.
digest-messages = New messages
digest-messages-from = { $count ->
    [one] 1 message from { $contact }
   *[other] { $count } messages from { $contact }
}
digest-unread = Unread notifications ({ $count })
digest-mailboxes = Mailboxes that need attention
digest-appointments = Appointments today
digest-appointment-line = { $time } – { $title }
digest-calendar = On your calendar today
digest-calendar-line = { $time } – { $title }
digest-all-day = All day
digest-untitled = (no title)
digest-tasks = Tasks due today
digest-task-line = { $title } (due { $time })
digest-footer = You get this summary every day at { $time } ({ $zone }).

# Workspace invitations. $name is the inviter, $role one of owner, admin, member.
invitation-role = { $role ->
    [owner] an owner
    [admin] an admin
   *[member] a member
}
invitation-subject = { $name } invited you to { $workspace }
invitation-body =
    { $name } invited you to join the workspace { $workspace } in Concierge as { invitation-role }.
    To accept or decline, open this link within { $hours } hours:

    { $link }

    You can also answer in Concierge, under your invitations. If you do not know { $name }, ignore this email: nothing changes unless you accept.
invitation-sign-up-subject = { $name } invited you to { $workspace }
invitation-sign-up-body =
    { $name } invited you to join the workspace { $workspace } in Concierge as { invitation-role }.
    To accept, create your account with this email address from this link within { $hours } hours:

    { $link }

    If you do not know { $name }, ignore this email: nothing happens unless you sign up and accept.
email-settings-link = Notification settings
email-unsubscribe-link = Stop emails like this
digest-unsubscribe-link = Stop the daily summary
