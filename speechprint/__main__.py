from speechprint.cli import main

main()
