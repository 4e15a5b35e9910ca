# Why a field was refused (extensions.reason), in the caller's language.
error-required = cannot be empty
error-too-long = at most { $max } characters
error-control-characters = cannot contain control characters
error-not-a-phone-number = not a phone number
error-unsupported-language = not a supported language; choose one from supportedLanguages
error-unknown-time-zone = not an IANA time zone name (e.g. Europe/Warsaw)
error-not-a-time-of-day = not a time of day; use HH:MM, e.g. 09:00
error-end-before-start = the end must be after the start
error-duplicate = listed twice
error-in-the-past = this date is in the past
error-overlaps = overlaps another interval
error-invalid = not a valid value
error-fields = { $count } fields are invalid
