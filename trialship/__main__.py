from trialship.cli import main

main()
