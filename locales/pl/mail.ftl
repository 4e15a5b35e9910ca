language-name = Polski

greeting = Dzień dobry, { $name },
signoff = — Concierge

email-change-verify-subject = Potwierdź nowy adres e-mail do logowania
email-change-verify-body =
    Ktoś (mamy nadzieję, że Ty) poprosił o ustawienie { $new_email } jako adresu e-mail do logowania na koncie Concierge.
    Aby to potwierdzić, otwórz ten link w ciągu { $hours } godz.:

    { $link }

    Jeśli to nie Ty, zignoruj tę wiadomość: bez użycia linku nic się nie zmieni.

email-change-notice-subject = Adres e-mail do logowania jest zmieniany
email-change-notice-body =
    Z adresu { $ip } poproszono o zmianę Twojego adresu e-mail do logowania na { $new_email }.
    Zmiana zacznie obowiązywać po potwierdzeniu nowego adresu.

    Jeśli to nie Ty, natychmiast zmień hasło i sprawdź swoje sesje.

email-changed-subject = Adres e-mail do logowania został zmieniony
email-changed-body =
    Twój adres e-mail do logowania to teraz { $new_email }. Od teraz loguj się tym adresem.

    Jeśli to nie Ty, natychmiast skontaktuj się z administratorem przestrzeni roboczej.

password-changed-subject = Twoje hasło zostało zmienione
password-changed-body =
    Hasło do Twojego konta Concierge zostało zmienione { $time } (UTC) z adresu { $ip }.
    Wszystkie pozostałe sesje zostały wylogowane.

    Jeśli to nie Ty, natychmiast zresetuj hasło i sprawdź dziennik bezpieczeństwa.

password-reset-subject = Zresetuj hasło do Concierge
password-reset-body =
    Ktoś (mamy nadzieję, że Ty) poprosił z adresu { $ip } o zresetowanie hasła do Twojego konta Concierge.
    Aby ustawić nowe, otwórz ten link w ciągu { $minutes } min:

    { $link }

    Link działa jeden raz. Jeśli to nie Ty, zignoruj tę wiadomość: hasło pozostanie bez zmian.

password-reset-done-subject = Twoje hasło zostało zresetowane
password-reset-done-body =
    Hasło do Twojego konta Concierge zostało zresetowane linkiem z e-maila { $time } (UTC) z adresu { $ip }.
    Wszystkie sesje zostały wylogowane; logowanie dwuskładnikowe, jeśli go używasz, pozostaje włączone.

    Jeśli to nie Ty, natychmiast zresetuj hasło ponownie i sprawdź dziennik bezpieczeństwa.

verify-email-subject = Potwierdź swój adres e-mail
verify-email-body =
    Witamy w Concierge. Aby potwierdzić, że { $email } to Twój adres, otwórz ten link w ciągu { $days } dni:

    { $link }

    Jeśli nie zakładałeś tego konta, zignoruj tę wiadomość.

sign-up-attempt-subject = Ktoś próbował zarejestrować się Twoim adresem
sign-up-attempt-body =
    Ktoś próbował założyć nowe konto Concierge z adresem { $email }, który ma już konto: Twoje.
    Nic nie zostało zmienione. Jeśli to Ty, po prostu się zaloguj; jeśli nie pamiętasz hasła, zresetuj je tutaj:

    { $reset }

    Jeśli to nie Ty, możesz zignorować tę wiadomość.

account-deletion-subject = Twoje konto Concierge zostanie usunięte
account-deletion-body =
    Zgodnie z Twoją prośbą konto Concierge zostanie usunięte { $when } (UTC) razem z sesjami, tokenami, podłączonymi skrzynkami i kalendarzami.
    Do tego czasu możesz się zalogować i anulować usunięcie w sekcji Bezpieczeństwo, jeśli zmienisz zdanie.

    Jeśli to nie Ty, zaloguj się teraz, anuluj usunięcie i zmień hasło.

# E-maile z powiadomieniami (HTML i tekst korzystają z tych samych napisów).
notification-subject-many = Nowe powiadomienia: { $count }
notification-intro-one = Masz coś nowego:
notification-intro-many = Pod Twoją nieobecność wydarzyło się: { $count }
notification-more = …i jeszcze { $count }.
notification-open = Otwórz Concierge
notification-footer = Otrzymujesz te e-maile zgodnie z ustawieniami powiadomień.

# Podsumowanie dzienne.
digest-subject = Twoje podsumowanie dnia { $date }
digest-intro = Oto co wydarzyło się na Twoim koncie { $date }.
digest-messages = Nowe wiadomości
digest-messages-from = { $count ->
    [one] 1 wiadomość od { $contact }
    [few] { $count } wiadomości od { $contact }
   *[other] { $count } wiadomości od { $contact }
}
digest-unread = Nieprzeczytane powiadomienia ({ $count })
digest-mailboxes = Skrzynki wymagające uwagi
digest-appointments = Dzisiejsze spotkania
digest-appointment-line = { $time } – { $title }
digest-calendar = Dziś w Twoim kalendarzu
digest-calendar-line = { $time } – { $title }
digest-all-day = Cały dzień
digest-untitled = (bez tytułu)
digest-tasks = Zadania na dziś
digest-task-line = { $title } (termin { $time })
digest-footer = To podsumowanie przychodzi codziennie o { $time } ({ $zone }).

# Zaproszenia do przestrzeni roboczej. $name to osoba zapraszająca, $role: owner, admin lub member.
invitation-role = { $role ->
    [owner] właściciel
    [admin] administrator
   *[member] członek
}
invitation-subject = { $name } zaprasza Cię do { $workspace }
invitation-body =
    { $name } zaprasza Cię do przestrzeni roboczej { $workspace } w Concierge (rola: { invitation-role }).
    Aby przyjąć lub odrzucić zaproszenie, otwórz ten link w ciągu { $hours } godz.:

    { $link }

    Możesz też odpowiedzieć w Concierge, w swoich zaproszeniach. Jeśli nie znasz osoby { $name }, zignoruj tę wiadomość: bez Twojej zgody nic się nie zmieni.
invitation-sign-up-subject = { $name } zaprasza Cię do { $workspace }
invitation-sign-up-body =
    { $name } zaprasza Cię do przestrzeni roboczej { $workspace } w Concierge (rola: { invitation-role }).
    Aby przyjąć zaproszenie, załóż konto z tym adresem e-mail, korzystając z tego linku w ciągu { $hours } godz.:

    { $link }

    Jeśli nie znasz osoby { $name }, zignoruj tę wiadomość: bez rejestracji i Twojej zgody nic się nie stanie.
email-settings-link = Ustawienia powiadomień
email-unsubscribe-link = Nie wysyłaj takich e-maili
digest-unsubscribe-link = Nie wysyłaj codziennego podsumowania
