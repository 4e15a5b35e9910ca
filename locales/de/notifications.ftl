# Benachrichtigungen zu Sicherheitsereignissen (in der App, per E-Mail und Push).
security-password-changed = Ihr Passwort wurde geändert
security-two-factor-enabled = Die Zwei-Faktor-Authentifizierung wurde eingeschaltet
security-two-factor-disabled = Die Zwei-Faktor-Authentifizierung wurde ausgeschaltet
security-recovery-code-used = Zur Anmeldung wurde ein Wiederherstellungscode verwendet
security-recovery-codes-regenerated = Neue Wiederherstellungscodes wurden erzeugt
security-access-token-created = Ein persönliches Zugriffstoken wurde erstellt
security-email-changed = Ihre Anmelde-E-Mail wurde geändert
security-mailbox-connected = Ein Postfach wurde verbunden
security-mailbox-disconnected = Ein Postfach wurde getrennt
security-body = { $what }. Falls Sie das nicht waren, ändern Sie Ihr Passwort und prüfen Sie Ihr Sicherheitsprotokoll.
security-body-from = { $what } (von { $ip }). Falls Sie das nicht waren, ändern Sie Ihr Passwort und prüfen Sie Ihr Sicherheitsprotokoll.
mail-received-title = Neue Nachricht von { $sender }
mail-received-untitled = Neue Nachricht
mailbox-reauth-title = { $address }: bitte erneut anmelden
mailbox-reauth-body = Der Mailserver hat das gespeicherte Passwort abgelehnt. E-Mails dieses Postfachs werden erst wieder synchronisiert, wenn Sie es neu verbinden.
webhook-disabled-title = Ein Webhook wurde deaktiviert, weil seine Zustellungen immer wieder fehlschlugen
webhook-disabled-body = Zustellungen an { $url } sind über einen Tag lang fehlgeschlagen, daher wurde der Webhook abgeschaltet. Die verpassten Ereignisse bleiben erhalten: Beheben Sie den Fehler beim Empfänger und schalten Sie den Webhook wieder ein, um sie zu senden.
