from clipgan.cli import main

main()
