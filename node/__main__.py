from node.app import main

main()
