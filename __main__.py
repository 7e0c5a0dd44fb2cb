from scumble.cli.app import main

main()
