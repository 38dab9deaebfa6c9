-- aqueue.sync (to be written)
return {}
