"""The email worker: drains the arq email queue, renders templates, sends through Resend."""
