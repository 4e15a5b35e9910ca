# Notifications des événements de sécurité (dans l'application, par e-mail et push).
security-password-changed = Votre mot de passe a été modifié
security-two-factor-enabled = L'authentification à deux facteurs a été activée
security-two-factor-disabled = L'authentification à deux facteurs a été désactivée
security-recovery-code-used = Un code de récupération a servi à se connecter
security-recovery-codes-regenerated = De nouveaux codes de récupération ont été générés
security-access-token-created = Un jeton d'accès personnel a été créé
security-email-changed = Votre e-mail de connexion a été modifié
security-mailbox-connected = Une boîte mail a été connectée
security-mailbox-disconnected = Une boîte mail a été déconnectée
security-body = { $what }. Si ce n'était pas vous, changez votre mot de passe et consultez votre journal de sécurité.
security-body-from = { $what } (depuis { $ip }). Si ce n'était pas vous, changez votre mot de passe et consultez votre journal de sécurité.
mail-received-title = Nouveau message de { $sender }
mail-received-untitled = Nouveau message
mailbox-reauth-title = { $address } : reconnectez-vous
mailbox-reauth-body = Le serveur de messagerie a refusé le mot de passe enregistré. Les e-mails de cette boîte ne sont plus synchronisés tant que vous ne la reconnectez pas.
webhook-disabled-title = Un webhook a été désactivé car ses envois échouaient sans cesse
webhook-disabled-body = Les envois vers { $url } ont échoué pendant plus d'un jour : le webhook a donc été désactivé. Les événements manqués sont conservés : corrigez le destinataire, puis réactivez le webhook pour les envoyer.
