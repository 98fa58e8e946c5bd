"""Where runs execute: in this process, a process pool or a Ray cluster, behind one protocol."""
