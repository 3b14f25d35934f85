"""`newsletter doctor`: tests the account end to end with the real send path (deliver/) and the real mailbox
(mailbox/), so it sits above both."""
