-- aqueue.work (to be written)
return {}
