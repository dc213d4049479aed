import sys

from carbonstream.cli import main

sys.exit(main())
