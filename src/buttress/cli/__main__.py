"""``python -m buttress.cli`` runs the ``buttress`` command."""

from buttress.cli import main

if __name__ == "__main__":
    main()
