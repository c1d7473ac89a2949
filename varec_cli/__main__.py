from varec_cli.launch import main

main()
