from node.web.app import main

main()
