from nx.cli.app import main

main()
