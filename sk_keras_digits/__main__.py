"""``python -m sk_keras_digits``: the ``sk-keras-digits`` command."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
