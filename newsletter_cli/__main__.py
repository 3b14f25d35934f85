"""`python -m newsletter_cli`: the same as the `newsletter` command."""

from newsletter_cli.cli import main

if __name__ == "__main__":
    main()
