"""The command line: parse options, call one library function, turn errors into exit codes.

Takes in: argv. Hands on: words on the terminal (`words`) or JSON, and an exit code (`run`).
`app` holds the commands, `groups` the `auth` and `sandbox` groups, `options` every option,
declared once.
"""
