import sys

from fastnet.cli.main import main

sys.exit(main())
