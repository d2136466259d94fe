"""The MPI layer: communicator helpers, the domain (halo exchange, migration) and the distributed S(k).
The only code that talks to the communicator; imports mpisim.core, never anything above it."""
