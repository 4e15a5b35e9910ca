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
