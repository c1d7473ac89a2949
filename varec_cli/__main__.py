from varec_cli.cli import main

main()
