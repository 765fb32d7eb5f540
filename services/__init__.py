"""One package per process: auth, api, worker and the migrate job."""
