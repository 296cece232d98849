"""The companion container runtime: pull, unpack, run and push images with runc or crun, no daemon.

It talks to any registry over HTTP, like docker does, and imports nothing from the server package.
"""
