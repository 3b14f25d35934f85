"""Recipients -> personal messages -> SMTP, with a journal so that a send can stop and resume."""
