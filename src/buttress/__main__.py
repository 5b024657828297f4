"""``python -m buttress`` runs the ``buttress`` command (needs ``buttress[cli]``)::

    $ python -m buttress --version
"""

from buttress.cli import main

if __name__ == "__main__":
    main()
