"""Everything that talks to Looker: transport, client, query runs. No Singer here."""
