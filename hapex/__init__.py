"""The operator's command line (`hapex`) and the local stack it brings up."""
