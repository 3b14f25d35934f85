"""The members: their lists, the suppression list, unsubscribe tokens and the per-edition send journal.

Both the outbound side (deliver/) and the inbound side (mailbox/) read and write this state; it knows neither.
"""
