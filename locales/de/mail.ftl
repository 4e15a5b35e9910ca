language-name = Deutsch

greeting = Hallo { $name },
signoff = — Concierge

email-change-verify-subject = Bestätigen Sie Ihre neue Anmelde-E-Mail-Adresse
email-change-verify-body =
    Jemand (hoffentlich Sie) möchte { $new_email } zur Anmelde-E-Mail-Adresse Ihres Concierge-Kontos machen.
    Öffnen Sie zur Bestätigung innerhalb von { $hours } Stunden diesen Link:

    { $link }

    Wenn Sie das nicht angefordert haben, ignorieren Sie diese E-Mail: Ohne den Link ändert sich nichts.

email-change-notice-subject = Ihre Anmelde-E-Mail-Adresse wird geändert
email-change-notice-body =
    Von { $ip } wurde angefordert, Ihre Anmelde-E-Mail-Adresse auf { $new_email } zu ändern.
    Die Änderung wird wirksam, sobald die neue Adresse bestätigt ist.

    Wenn Sie das nicht waren, ändern Sie sofort Ihr Passwort und prüfen Sie Ihre Sitzungen.

email-changed-subject = Ihre Anmelde-E-Mail-Adresse wurde geändert
email-changed-body =
    Ihre Anmelde-E-Mail-Adresse lautet jetzt { $new_email }. Melden Sie sich ab sofort mit dieser Adresse an.

    Wenn Sie das nicht waren, wenden Sie sich sofort an die Administration Ihres Arbeitsbereichs.

password-changed-subject = Ihr Passwort wurde geändert
password-changed-body =
    Das Passwort Ihres Concierge-Kontos wurde am { $time } (UTC) von { $ip } aus geändert.
    Alle anderen Sitzungen wurden abgemeldet.

    Wenn Sie das nicht waren, setzen Sie Ihr Passwort sofort zurück und prüfen Sie Ihr Sicherheitsprotokoll.

password-reset-subject = Setzen Sie Ihr Concierge-Passwort zurück
password-reset-body =
    Jemand (hoffentlich Sie) hat von { $ip } aus verlangt, das Passwort Ihres Concierge-Kontos zurückzusetzen.
    Um ein neues zu wählen, öffnen Sie diesen Link innerhalb von { $minutes } Minuten:

    { $link }

    Der Link funktioniert einmal. Wenn Sie das nicht waren, ignorieren Sie diese E-Mail: Ihr Passwort bleibt, wie es ist.

password-reset-done-subject = Ihr Passwort wurde zurückgesetzt
password-reset-done-body =
    Das Passwort Ihres Concierge-Kontos wurde am { $time } (UTC) von { $ip } aus über einen E-Mail-Link zurückgesetzt.
    Alle Sitzungen wurden abgemeldet; die Zwei-Faktor-Anmeldung bleibt, falls Sie sie nutzen, eingeschaltet.

    Wenn Sie das nicht waren, setzen Sie Ihr Passwort sofort erneut zurück und prüfen Sie Ihr Sicherheitsprotokoll.

verify-email-subject = Bestätigen Sie Ihre E-Mail-Adresse
verify-email-body =
    Willkommen bei Concierge. Um zu bestätigen, dass { $email } Ihre Adresse ist, öffnen Sie diesen Link innerhalb von { $days } Tagen:

    { $link }

    Wenn Sie dieses Konto nicht angelegt haben, ignorieren Sie diese E-Mail.

sign-up-attempt-subject = Jemand wollte sich mit Ihrer Adresse registrieren
sign-up-attempt-body =
    Jemand wollte mit { $email } ein neues Concierge-Konto anlegen, doch die Adresse hat bereits eines: Ihres.
    Es wurde nichts geändert. Wenn Sie es waren, melden Sie sich stattdessen an; falls Sie Ihr Passwort vergessen haben, setzen Sie es hier zurück:

    { $reset }

    Wenn Sie es nicht waren, können Sie diese E-Mail ignorieren.

account-deletion-subject = Ihr Concierge-Konto wird gelöscht
account-deletion-body =
    Wie gewünscht wird Ihr Concierge-Konto am { $when } (UTC) gelöscht, mit seinen Sitzungen, Tokens, verbundenen Postfächern und Kalendern.
    Bis dahin können Sie sich anmelden und die Löschung unter Sicherheit abbrechen, falls Sie es sich anders überlegen.

    Wenn Sie das nicht waren, melden Sie sich jetzt an, brechen Sie die Löschung ab und ändern Sie Ihr Passwort.

# Benachrichtigungs-E-Mails (HTML und Text teilen sich diese).
notification-subject-many = { $count } neue Benachrichtigungen
notification-intro-one = Es gibt etwas Neues für Sie:
notification-intro-many = Während Sie weg waren, ist { $count }-mal etwas passiert:
notification-more = …und { $count } weitere.
notification-open = Concierge öffnen
notification-footer = Sie erhalten diese E-Mails wegen Ihrer Benachrichtigungseinstellungen.

# Die tägliche Zusammenfassung.
digest-subject = Ihre tägliche Zusammenfassung für den { $date }
digest-intro = Das ist am { $date } in Ihrem Konto passiert.
digest-messages = Neue Nachrichten
digest-messages-from = { $count ->
    [one] 1 Nachricht von { $contact }
   *[other] { $count } Nachrichten von { $contact }
}
digest-unread = Ungelesene Benachrichtigungen ({ $count })
digest-mailboxes = Postfächer, die Aufmerksamkeit brauchen
digest-appointments = Termine heute
digest-appointment-line = { $time } – { $title }
digest-calendar = Heute in Ihrem Kalender
digest-calendar-line = { $time } – { $title }
digest-all-day = Ganztägig
digest-untitled = (ohne Titel)
digest-tasks = Heute fällige Aufgaben
digest-task-line = { $title } (fällig um { $time })
digest-footer = Sie erhalten diese Zusammenfassung täglich um { $time } ({ $zone }).

# Einladungen in einen Arbeitsbereich. $name ist die einladende Person, $role owner, admin oder member.
invitation-role = { $role ->
    [owner] Eigentümer
    [admin] Administrator
   *[member] Mitglied
}
invitation-subject = { $name } hat Sie in { $workspace } eingeladen
invitation-body =
    { $name } hat Sie eingeladen, dem Arbeitsbereich { $workspace } in Concierge als { invitation-role } beizutreten.
    Um anzunehmen oder abzulehnen, öffnen Sie diesen Link innerhalb von { $hours } Stunden:

    { $link }

    Sie können auch in Concierge unter Ihren Einladungen antworten. Wenn Sie { $name } nicht kennen, ignorieren Sie diese E-Mail: Ohne Ihre Zustimmung ändert sich nichts.
invitation-sign-up-subject = { $name } hat Sie in { $workspace } eingeladen
invitation-sign-up-body =
    { $name } hat Sie eingeladen, dem Arbeitsbereich { $workspace } in Concierge als { invitation-role } beizutreten.
    Um anzunehmen, erstellen Sie über diesen Link innerhalb von { $hours } Stunden Ihr Konto mit dieser E-Mail-Adresse:

    { $link }

    Wenn Sie { $name } nicht kennen, ignorieren Sie diese E-Mail: Ohne Registrierung und Zustimmung geschieht nichts.
email-settings-link = Benachrichtigungseinstellungen
email-unsubscribe-link = Solche E-Mails abbestellen
digest-unsubscribe-link = Tägliche Zusammenfassung abbestellen
