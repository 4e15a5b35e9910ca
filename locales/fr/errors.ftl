# Why a field was refused (extensions.reason), in the caller's language.
error-required = ne peut pas être vide
error-too-long = { $max } caractères au maximum
error-control-characters = ne peut pas contenir de caractères de contrôle
error-not-a-phone-number = ce n'est pas un numéro de téléphone
error-unsupported-language = langue non prise en charge ; choisissez-en une dans supportedLanguages
error-unknown-time-zone = ce n'est pas un nom de fuseau horaire IANA (par ex. Europe/Paris)
error-not-a-time-of-day = ce n'est pas une heure ; utilisez HH:MM, par ex. 09:00
error-end-before-start = la fin doit être après le début
error-duplicate = indiqué deux fois
error-in-the-past = cette date est passée
error-overlaps = chevauche un autre intervalle
error-invalid = valeur non valide
error-fields = { $count } champs ne sont pas valides
