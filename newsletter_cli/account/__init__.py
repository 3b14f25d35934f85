"""The account the newsletter sends from: the Microsoft 365 sign-in and its token cache, access tokens, what a
refusal means in plain words, the From domain's DNS and password hints. Below deliver/ and mailbox/, which use it."""
