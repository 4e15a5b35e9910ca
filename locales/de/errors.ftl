# Why a field was refused (extensions.reason), in the caller's language.
error-required = darf nicht leer sein
error-too-long = höchstens { $max } Zeichen
error-control-characters = darf keine Steuerzeichen enthalten
error-not-a-phone-number = keine Telefonnummer
error-unsupported-language = keine unterstützte Sprache; wählen Sie eine aus supportedLanguages
error-unknown-time-zone = kein IANA-Zeitzonenname (z. B. Europe/Berlin)
error-not-a-time-of-day = keine Uhrzeit; verwenden Sie HH:MM, z. B. 09:00
error-end-before-start = das Ende muss nach dem Beginn liegen
error-duplicate = doppelt angegeben
error-in-the-past = dieses Datum liegt in der Vergangenheit
error-overlaps = überschneidet sich mit einem anderen Zeitraum
error-invalid = kein gültiger Wert
error-fields = { $count } Felder sind ungültig
