"""Import an Nginx Proxy Manager installation (its database, data/ and letsencrypt/)."""
