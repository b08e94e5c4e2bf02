-- An e-mail is marked 'sending' (committed) before it goes to the SMTP server, so a
-- sender that starts after a crash knows which e-mail may or may not have been accepted:
-- it marks it 'unconfirmed' (a person decides) and never sends it again by itself
-- (services/notify/sender.py).
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_mail_state_check;
ALTER TABLE notifications
    ADD CONSTRAINT notifications_mail_state_check CHECK (
        mail_state IN ('none', 'pending', 'sending', 'sent', 'unconfirmed', 'failed', 'no_address')
    ),
    ADD COLUMN sending_at timestamptz;
