"""edition.yaml -> model -> MJML -> HTML and text: everything that makes the email, nothing that sends it."""
