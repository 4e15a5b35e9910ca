language-name = Français

greeting = Bonjour { $name },
signoff = — Concierge

email-change-verify-subject = Confirmez votre nouvelle adresse e-mail de connexion
email-change-verify-body =
    Quelqu’un (vous, espérons-le) a demandé que { $new_email } devienne l’adresse e-mail de connexion de votre compte Concierge.
    Pour confirmer, ouvrez ce lien dans les { $hours } heures :

    { $link }

    Si vous n’êtes pas à l’origine de cette demande, ignorez cet e-mail : rien ne change tant que le lien n’est pas utilisé.

email-change-notice-subject = Votre adresse e-mail de connexion va changer
email-change-notice-body =
    Une modification de votre adresse e-mail de connexion vers { $new_email } a été demandée depuis { $ip }.
    Elle prendra effet une fois la nouvelle adresse confirmée.

    Si ce n’était pas vous, changez votre mot de passe immédiatement et vérifiez vos sessions.

email-changed-subject = Votre adresse e-mail de connexion a été modifiée
email-changed-body =
    Votre adresse e-mail de connexion est désormais { $new_email }. Connectez-vous dorénavant avec cette adresse.

    Si ce n’était pas vous, contactez immédiatement l’administrateur de votre espace de travail.

password-changed-subject = Votre mot de passe a été modifié
password-changed-body =
    Le mot de passe de votre compte Concierge a été modifié le { $time } (UTC) depuis { $ip }.
    Toutes les autres sessions ont été déconnectées.

    Si ce n’était pas vous, réinitialisez votre mot de passe immédiatement et consultez votre journal de sécurité.

password-reset-subject = Réinitialisez votre mot de passe Concierge
password-reset-body =
    Quelqu'un (vous, espérons-le) a demandé depuis { $ip } la réinitialisation du mot de passe de votre compte Concierge.
    Pour en choisir un nouveau, ouvrez ce lien dans les { $minutes } minutes :

    { $link }

    Le lien ne fonctionne qu'une fois. Si vous n'êtes pas à l'origine de cette demande, ignorez cet e-mail : votre mot de passe reste inchangé.

password-reset-done-subject = Votre mot de passe a été réinitialisé
password-reset-done-body =
    Le mot de passe de votre compte Concierge a été réinitialisé par un lien envoyé par e-mail le { $time } (UTC) depuis { $ip }.
    Toutes les sessions ont été déconnectées ; la connexion à deux facteurs, si vous l'utilisez, reste active.

    Si ce n'était pas vous, réinitialisez immédiatement votre mot de passe et consultez votre journal de sécurité.

verify-email-subject = Confirmez votre adresse e-mail
verify-email-body =
    Bienvenue sur Concierge. Pour confirmer que { $email } est bien votre adresse, ouvrez ce lien dans les { $days } jours :

    { $link }

    Si vous n'avez pas créé ce compte, ignorez cet e-mail.

sign-up-attempt-subject = Quelqu'un a tenté de s'inscrire avec votre adresse
sign-up-attempt-body =
    Quelqu'un a tenté de créer un compte Concierge avec { $email }, qui en a déjà un : le vôtre.
    Rien n'a été modifié. Si c'était vous, connectez-vous plutôt ; si vous avez oublié votre mot de passe, réinitialisez-le ici :

    { $reset }

    Si ce n'était pas vous, vous pouvez ignorer cet e-mail.

account-deletion-subject = Votre compte Concierge va être supprimé
account-deletion-body =
    Comme vous l'avez demandé, votre compte Concierge sera supprimé le { $when } (UTC), avec ses sessions, jetons, boîtes mail et agendas connectés.
    D'ici là, connectez-vous et annulez la suppression dans Sécurité si vous changez d'avis.

    Si ce n'était pas vous, connectez-vous maintenant, annulez-la et changez votre mot de passe.

# E-mails de notification (le HTML et le texte partagent ces chaînes).
notification-subject-many = { $count } nouvelles notifications
notification-intro-one = Il y a du nouveau pour vous :
notification-intro-many = { $count } choses se sont passées pendant votre absence :
notification-more = …et { $count } de plus.
notification-open = Ouvrir Concierge
notification-footer = Vous recevez ces e-mails en raison de vos réglages de notification.

# Le résumé quotidien.
digest-subject = Votre résumé quotidien du { $date }
digest-intro = Voici ce qui s'est passé sur votre compte le { $date }.
digest-messages = Nouveaux messages
digest-messages-from = { $count ->
    [one] 1 message de { $contact }
   *[other] { $count } messages de { $contact }
}
digest-unread = Notifications non lues ({ $count })
digest-mailboxes = Boîtes mail à vérifier
digest-appointments = Rendez-vous aujourd'hui
digest-appointment-line = { $time } – { $title }
digest-calendar = Dans votre agenda aujourd'hui
digest-calendar-line = { $time } – { $title }
digest-all-day = Toute la journée
digest-untitled = (sans titre)
digest-tasks = Tâches à faire aujourd'hui
digest-task-line = { $title } (échéance à { $time })
digest-footer = Vous recevez ce résumé chaque jour à { $time } ({ $zone }).

# Invitations dans un espace de travail. $name est la personne qui invite, $role owner, admin ou member.
invitation-role = { $role ->
    [owner] propriétaire
    [admin] administrateur
   *[member] membre
}
invitation-subject = { $name } vous invite dans { $workspace }
invitation-body =
    { $name } vous invite à rejoindre l'espace de travail { $workspace } dans Concierge en tant que { invitation-role }.
    Pour accepter ou refuser, ouvrez ce lien dans les { $hours } heures :

    { $link }

    Vous pouvez aussi répondre dans Concierge, parmi vos invitations. Si vous ne connaissez pas { $name }, ignorez cet e-mail : rien ne change sans votre accord.
invitation-sign-up-subject = { $name } vous invite dans { $workspace }
invitation-sign-up-body =
    { $name } vous invite à rejoindre l'espace de travail { $workspace } dans Concierge en tant que { invitation-role }.
    Pour accepter, créez votre compte avec cette adresse e-mail depuis ce lien dans les { $hours } heures :

    { $link }

    Si vous ne connaissez pas { $name }, ignorez cet e-mail : rien ne se passe sans inscription ni accord de votre part.
email-settings-link = Réglages des notifications
email-unsubscribe-link = Ne plus recevoir ce type d'e-mail
digest-unsubscribe-link = Ne plus recevoir le résumé quotidien
