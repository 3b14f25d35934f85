"""The members: their lists, the suppression list, unsubscribe tokens and the per-edition send journal.

Both the outbound side (deliver/) and the inbound side (mailbox/) read and write this state; it knows neither.
One module per job: lists.py (a list file as CSV text), recipients.py, suppressions.py, unsubscribe.py,
journal.py (the only code that touches the journal's tables), sendlock.py, status.py and testsends.py.
Every function that needs the project folder is given the `Project`: nothing here looks at the current folder.
"""
