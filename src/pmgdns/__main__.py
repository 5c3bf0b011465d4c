"""`python -m pmgdns`. Python puts the working directory first on the module path here; a
checkout under review must not be able to shadow a library pmgdns imports, so it is dropped."""

import os
import sys

if __name__ == "__main__":
    _cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", _cwd)]

    from .cli import main

    main()
