-- aqueue.fs (to be written)
return {}
