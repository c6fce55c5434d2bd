"""Parameters of the smallest GRU4Rec that still trains: for tests that run a real training in seconds."""
TINY = "layers=16,n_epochs=1,batch_size=16,n_sample=32"
