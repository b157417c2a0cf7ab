"""A local deployment on one machine: the embedded broker and the processes of a stack."""
