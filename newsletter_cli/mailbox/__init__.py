"""The inbound side: `newsletter mailbox` reads bounces, complaints and unsubscribes over IMAP and acts on them."""
