# Why a field was refused (extensions.reason), in the caller's language.
error-required = nie może być puste
error-too-long = { $max ->
    [one] najwyżej { $max } znak
    [few] najwyżej { $max } znaki
   *[other] najwyżej { $max } znaków
}
error-control-characters = nie może zawierać znaków sterujących
error-not-a-phone-number = to nie jest numer telefonu
error-unsupported-language = nieobsługiwany język; wybierz jeden z supportedLanguages
error-unknown-time-zone = to nie jest nazwa strefy czasowej IANA (np. Europe/Warsaw)
error-not-a-time-of-day = to nie jest godzina; użyj formatu GG:MM, np. 09:00
error-end-before-start = koniec musi być po początku
error-duplicate = podano dwa razy
error-in-the-past = ta data już minęła
error-overlaps = nakłada się na inny przedział
error-invalid = nieprawidłowa wartość
error-fields = { $count ->
    [one] { $count } pole jest nieprawidłowe
    [few] { $count } pola są nieprawidłowe
   *[other] { $count } pól jest nieprawidłowych
}
