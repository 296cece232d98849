"""The Engine API daemon: `runtime daemon` serves the docker CLI on a unix socket, over the CLI's own store.

http.py          the interface route modules build on: Request, responses (JSON, empty, streamed, hijack), ApiError
router.py        Route and the table: versioned and unversioned paths, errors as {"message": ...}
server.py        one HTTP/1.1 connection with h11: keep-alive, chunked bodies, the 101 hijack
system.py        /_ping, /version, /info
images.py        image routes (archive.py: docker-archive save and load)
containers.py    container routes: create, start, wait, stop, restart, kill, rm, prune, rename, ps, inspect, top
attach.py        attach (the hijack, stdin in) and logs, as stdcopy frames
views.py         ps rows, inspect documents, top rows
execs.py         exec instances: create, start (the hijack), inspect, resize
execterm.py      exec -t: runc exec --detach, the container's terminal relayed from its console socket
execshim.py      the subreaper that reaps an exec -t process for its exit code
dockerconfig.py  the create body as RunOptions, and what else it asked kept in containers/<id>/docker.json
supervisor.py    exits and removals awaited, auto-remove, stdin pipes, monitors picked up after a restart
main.py          the socket (0660, root or --group), signals, the route table assembled
"""
