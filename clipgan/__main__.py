"""`python -m clipgan` and the `clipgan` console entry. Ctrl-C while the command modules are still
importing is one line too, like everywhere else."""

import sys


def run() -> None:
    try:
        from clipgan.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; nothing saved\n")
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
