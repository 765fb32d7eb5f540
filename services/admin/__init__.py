"""The operator's command line (`python -m services.admin`): act on orgs and users directly."""
