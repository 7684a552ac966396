from rnntool.cli import main

main()
