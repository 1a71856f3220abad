"""The real mail servers tests use live in ``assistant.stage.mailservers`` (the demo runs them too)."""

from assistant.stage.mailservers import (  # noqa: F401
    MAIL_UID, PASSWORD, USER, Dovecot, SmtpSink, dovecot_available, free_port, service_env,
)
