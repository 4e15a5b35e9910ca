# Powiadomienia o zdarzeniach bezpieczeństwa (w aplikacji, e-mailem i push).
security-password-changed = Twoje hasło zostało zmienione
security-two-factor-enabled = Włączono uwierzytelnianie dwuskładnikowe
security-two-factor-disabled = Wyłączono uwierzytelnianie dwuskładnikowe
security-recovery-code-used = Do logowania użyto kodu odzyskiwania
security-recovery-codes-regenerated = Wygenerowano nowe kody odzyskiwania
security-access-token-created = Utworzono osobisty token dostępu
security-email-changed = Twój e-mail logowania został zmieniony
security-mailbox-connected = Połączono skrzynkę pocztową
security-mailbox-disconnected = Odłączono skrzynkę pocztową
security-body = { $what }. Jeśli to nie Ty, zmień hasło i sprawdź dziennik bezpieczeństwa.
security-body-from = { $what } (z { $ip }). Jeśli to nie Ty, zmień hasło i sprawdź dziennik bezpieczeństwa.
mail-received-title = Nowa wiadomość od { $sender }
mail-received-untitled = Nowa wiadomość
mailbox-reauth-title = { $address }: zaloguj się ponownie
mailbox-reauth-body = Serwer poczty odrzucił zapisane hasło. Poczta z tej skrzynki nie będzie synchronizowana, dopóki nie połączysz jej ponownie.
webhook-disabled-title = Webhook został wyłączony, ponieważ jego dostarczenia wciąż się nie udawały
webhook-disabled-body = Dostarczenia do { $url } nie udawały się przez ponad dobę, więc webhook został wyłączony. Pominięte zdarzenia są zachowane: napraw odbiorcę, a potem włącz webhook ponownie, aby je wysłać.
